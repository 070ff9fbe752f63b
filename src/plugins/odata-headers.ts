/** Headers every Dataverse Web API response carries. */
import fp from "fastify-plugin";
import { ODATA_JSON } from "../odata/media-types.js";

export { ODATA_JSON };

export const odataHeadersPlugin = fp(
  async (app) => {
    app.addHook("onSend", async (request, reply, payload) => {
      reply.header("OData-Version", "4.0");
      reply.header("x-request-id", request.id);
      // Set here, after serialisation: Fastify would otherwise rewrite the parameters.
      const type = reply.getHeader("content-type");
      if (typeof type === "string" && type.startsWith("application/json")) reply.header("content-type", ODATA_JSON);
      return payload;
    });
  },
  { name: "odata-headers" },
);
