/** The Prefer request header (shared/reference/dataverse-webapi.md §8). */
export interface Preferences {
  returnRepresentation: boolean;
  includeAnnotations?: string;
  maxPageSize?: number;
  continueOnError: boolean;
}

export function parsePrefer(header: string | string[] | undefined): Preferences {
  // Split on commas outside quotes: include-annotations="a,b" is one preference.
  const parts = (Array.isArray(header) ? header.join(",") : (header ?? ""))
    .split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)
    .map((p) => p.trim())
    .filter(Boolean);
  const preferences: Preferences = { returnRepresentation: false, continueOnError: false };
  for (const part of parts) {
    const [name = "", ...rest] = part.split("=");
    const value = rest
      .join("=")
      .trim()
      .replace(/^"(.*)"$/, "$1");
    switch (name.trim().toLowerCase()) {
      case "return":
        preferences.returnRepresentation = value === "representation";
        break;
      case "odata.include-annotations":
        preferences.includeAnnotations = value;
        break;
      case "odata.maxpagesize": {
        const size = Number(value);
        if (Number.isInteger(size) && size > 0) preferences.maxPageSize = size;
        break;
      }
      case "odata.continue-on-error":
        preferences.continueOnError = true;
        break;
    }
  }
  return preferences;
}
