/**
 * Parses the resource path after `/api/data/v9.x/`:
 *   {set} | {set}(<key>) | {set}(<key>)/<property> | {set}(<key>)/<navigation property>
 * where <key> is a bare GUID, `<primarykey>=<guid>`, or the table's alternate key as
 * `name='value'[,name2='value2']`. Pure: names resolve against the table definitions.
 */
import { ODataError, ErrorCodes, badRequest, resourceNotFound } from "./errors.js";
import { type RecordKey, isGuid, unbraceGuid } from "../model/keys.js";
import { type NavigationProperty, navigationByName } from "../model/navigation.js";
import { type ColumnDef, type TableDef, tableByEntitySet } from "../model/tables.js";
import { hasNulCharacter } from "../model/date-time.js";
import { entityTypeName, propertyByName } from "../model/properties.js";
import { quoted } from "./echo.js";

export interface ResourcePath {
  table: TableDef;
  key?: RecordKey;
  property?: ColumnDef;
  /** `{set}(<key>)/<navigation property>`: the related row(s) of the keyed row. */
  navigation?: NavigationProperty;
  /** `{set}/$count` */
  count?: boolean;
}

const invalidKey = (table: TableDef) =>
  badRequest(
    `The key in the request URI is not valid for resource '${entityTypeName(table)}'. ` +
      `Ensure that the names and number of key properties match the declared or alternate key properties for the resource. ` +
      `Use ${table.entitySetName}(<guid>)` +
      (table.naturalKey ? ` or ${table.entitySetName}(${table.naturalKey.map((k) => `${k}='…'`).join(",")})` : "") +
      ".",
    ErrorCodes.badRequest,
  );

/** Splits `a='x',b='it''s'` into pairs, honouring doubled quotes inside literals. */
function parseKeyPairs(text: string, table: TableDef): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0) throw invalidKey(table);
    const name = text.slice(i, eq).trim();
    i = eq + 1;
    let value: string;
    if (text[i] === "'") {
      value = "";
      i++;
      for (;;) {
        if (i >= text.length) throw badRequest(`There is an unterminated literal at position ${eq + 1} in '${text}'.`);
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i++];
      }
    } else {
      const comma = text.indexOf(",", i);
      value = (comma < 0 ? text.slice(i) : text.slice(i, comma)).trim();
      i = comma < 0 ? text.length : comma;
    }
    pairs.push([name, value]);
    if (i < text.length) {
      if (text[i] !== ",") throw invalidKey(table);
      i++;
    }
  }
  return pairs;
}

export function parseKey(text: string, table: TableDef): RecordKey {
  const trimmed = unbraceGuid(text.trim());
  if (!trimmed.includes("=")) {
    if (!isGuid(trimmed)) {
      throw badRequest(
        `${quoted(trimmed)} is not a valid key for ${table.entitySetName}: use the row's GUID (${table.primaryKey}) or its alternate key.`,
        ErrorCodes.badRequest,
      );
    }
    return { kind: "id", id: trimmed.toLowerCase() };
  }
  const pairs = parseKeyPairs(trimmed, table);
  if (pairs.some(([, value]) => hasNulCharacter(value)))
    throw badRequest("A key value holds a NUL character.", ErrorCodes.badRequest);
  if (pairs.length === 1 && pairs[0]![0] === table.primaryKey) {
    const id = unbraceGuid(pairs[0]![1]);
    if (!isGuid(id)) throw badRequest(`'${id}' is not a valid GUID for ${table.primaryKey}.`, ErrorCodes.badRequest);
    return { kind: "id", id: id.toLowerCase() };
  }
  const names = pairs.map(([name]) => name);
  const natural = table.naturalKey ?? [];
  const matches = names.length === natural.length && natural.every((k) => names.includes(k));
  if (!matches) throw invalidKey(table);
  return { kind: "alternate", values: Object.fromEntries(pairs) };
}

/** `path` is everything after `/api/data/v9.x/`, still percent-encoded, without the query. */
export function parseResourcePath(path: string): ResourcePath {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw badRequest(`The request URI '${path}' is not valid: bad percent-encoding.`, ErrorCodes.badRequest);
  }
  const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:\((.*)\))?(?:\/([^/]+))?\/?$/s.exec(decoded);
  if (!match) {
    const segment = decoded.split(/[/(]/)[0] ?? decoded;
    const table = tableByEntitySet(segment);
    if (!table) throw resourceNotFound(segment);
    throw new ODataError(404, ErrorCodes.resourceNotFound, `Resource not found for the segment '${decoded}'.`);
  }
  const [, setName, keyText, propertyName] = match;
  const table = tableByEntitySet(setName!);
  if (!table) throw resourceNotFound(setName!);
  const resource: ResourcePath = { table };
  if (keyText !== undefined) resource.key = parseKey(keyText, table);
  if (propertyName === "$count" && !resource.key) return { table, count: true };
  if (propertyName !== undefined) {
    if (!resource.key) throw resourceNotFound(propertyName);
    const property = propertyByName(table, propertyName);
    const navigation = property ? undefined : navigationByName(table, propertyName);
    if (property) resource.property = property;
    else if (navigation) resource.navigation = navigation;
    else throw resourceNotFound(propertyName);
  }
  return resource;
}
