/**
 * The layering of src/ (README "Layout"): every folder imports only folders below it.
 * `npm run depcheck` fails on any import against this order and on any cycle.
 */
// Top to bottom. Entry points (src/*.ts) sit above every folder.
const LAYERS = [
  "routes",
  "plugins",
  "service",
  "actions",
  "audit",
  "analytics",
  "identity",
  "observe",
  "channel-analytics",
  "odata",
  "model",
  "db",
  "config",
];

const folder = (name) => `^src/${name}/`;

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "A cycle, between files or folders, means the layers are not layers.",
      from: {},
      to: { circular: true },
    },
    ...LAYERS.map((layer, i) => ({
      name: `layer-${layer}`,
      severity: "error",
      comment: `src/${layer}/ may import only the folders below it: ${LAYERS.slice(i + 1).join(", ") || "none"}.`,
      from: { path: folder(layer) },
      to: { path: [...LAYERS.slice(0, i).map(folder), "^src/[^/]+\\.ts$"] },
    })),
    {
      name: "no-upward-from-tooling",
      severity: "error",
      comment: "src/ never imports tests, scripts or the benchmark.",
      from: { path: "^src/" },
      to: { path: "^(test|scripts|bench)/" },
    },
    {
      name: "no-unknown-folder",
      severity: "error",
      comment: "Every folder of src/ has a place in the layering (.dependency-cruiser.cjs LAYERS).",
      from: { path: "^src/[^/]+/", pathNot: `^src/(${LAYERS.join("|")})/` },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};
