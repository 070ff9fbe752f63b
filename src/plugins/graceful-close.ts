/**
 * While the app closes, responses carry `Connection: close`, so keep-alive connections
 * of in-flight requests end with their response instead of holding the close open
 * until the keep-alive timeout.
 */
import fp from "fastify-plugin";

export const gracefulClosePlugin = fp(
  async (app) => {
    let closing = false;
    app.addHook("preClose", async () => {
      closing = true;
    });
    app.addHook("onSend", async (_request, reply, payload) => {
      if (closing) reply.header("connection", "close");
      return payload;
    });
  },
  { name: "graceful-close" },
);
