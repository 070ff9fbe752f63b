/** `npm run db:schema`: writes prisma/schema.prisma from src/model/tables.ts. */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { renderPrismaSchema } from "../src/model/prisma-schema.js";
import { ROOT } from "./prisma-cli.js";

const target = path.join(ROOT, "prisma/schema.prisma");
await writeFile(target, renderPrismaSchema());
console.log(`wrote ${path.relative(ROOT, target)}; next: npm run db:migration -- <name>`);
