/** `npm run token`: prints an access token for the administrator made on first start (the server must be running). */
import { adminToken, main } from "./server-client.js";

await main(async () => {
  process.stdout.write(`${await adminToken()}\n`);
});
