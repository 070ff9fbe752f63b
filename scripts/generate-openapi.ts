/** `npm run openapi`: writes openapi.yaml from the route schemas. */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { renderOpenApiYaml } from "../src/openapi.js";

const target = path.resolve(import.meta.dirname, "../openapi.yaml");
await writeFile(target, await renderOpenApiYaml());
console.log("wrote openapi.yaml");
