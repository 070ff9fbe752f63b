/** `GET {root}WhoAmI()`: the caller's user, business unit and organization. */
import { DATAVERSE_NAMESPACE } from "../model/properties.js";
import type { OperationDefinition } from "./action.js";

const guid = { type: "string", format: "uuid" };

export const whoAmI: OperationDefinition = {
  kind: "Function",
  name: "WhoAmI",
  binding: "unbound",
  successStatus: 200,
  // Any principal may ask who it is.
  privileges: () => [],
  summary: "WhoAmI: the caller's user, business unit and organization",
  description: "Also answers as WhoAmI(). Other methods than GET answer 405 with an Allow header.",
  parameters: () => [],
  returnType: { type: "mscrm.WhoAmIResponse", nullable: false },
  complexTypes: [
    {
      name: "WhoAmIResponse",
      properties: [
        { name: "BusinessUnitId", type: "Edm.Guid", nullable: false },
        { name: "UserId", type: "Edm.Guid", nullable: false },
        { name: "OrganizationId", type: "Edm.Guid", nullable: false },
      ],
    },
  ],
  openApi: () => ({
    responses: {
      "200": {
        description: `${DATAVERSE_NAMESPACE}.WhoAmIResponse`,
        content: {
          "application/json": {
            schema: {
              type: "object",
              required: ["@odata.context", "BusinessUnitId", "UserId", "OrganizationId"],
              properties: { "@odata.context": { type: "string" }, BusinessUnitId: guid, UserId: guid, OrganizationId: guid },
            },
          },
        },
      },
    },
  }),
  handler: async ({ root, context }) => ({
    status: 200,
    headers: {},
    body: {
      "@odata.context": `${root}$metadata#${DATAVERSE_NAMESPACE}.WhoAmIResponse`,
      BusinessUnitId: context.caller.businessUnitId,
      UserId: context.caller.userId,
      OrganizationId: context.caller.organizationId,
    },
  }),
};
