/** Headers every Dataverse Web API response carries. */
import fp from "fastify-plugin";

/** The Content-Type of JSON bodies (shared/reference/dataverse-webapi.md §0). */
export const ODATA_JSON = "application/json; odata.metadata=minimal";

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
