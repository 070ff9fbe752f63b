/**
 * `$filter` (and the expressions inside `$apply=filter(...)`): tokenizer and
 * recursive-descent parser into an AST. Pure: names are checked later, against the table,
 * when the AST becomes SQL. Errors say what is wrong and where (0-based positions).
 *
 * Grammar (the Dataverse subset, shared/reference/dataverse-webapi.md §3):
 *   expr     := and ('or' and)*
 *   and      := unary ('and' unary)*
 *   unary    := 'not' unary | primary
 *   primary  := '(' expr ')' | stringFn | queryFn | operand cmp operand
 *   stringFn := ('contains'|'startswith'|'endswith') '(' operand ',' operand ')'
 *   queryFn  := 'Microsoft.Dynamics.CRM.' Name '(' [Name '=' value (',' Name '=' value)*] ')'
 */
import { ErrorCodes, ODataError } from "./errors.js";
import { hasNulCharacter } from "../model/date-time.js";
import { DATAVERSE_NAMESPACE } from "../model/properties.js";

export type LiteralType = "string" | "number" | "guid" | "datetime" | "boolean" | "null";

export interface Literal {
  kind: "literal";
  type: LiteralType;
  value: string | number | boolean | null;
  position: number;
}
export interface PropertyRef {
  kind: "property";
  name: string;
  position: number;
}
export type Operand = Literal | PropertyRef;

export type ComparisonOp = "eq" | "ne" | "gt" | "ge" | "lt" | "le";
export type StringFunction = "contains" | "startswith" | "endswith";

export type FilterExpr =
  | { kind: "and" | "or"; left: FilterExpr; right: FilterExpr }
  | { kind: "not"; operand: FilterExpr; position: number }
  | { kind: "compare"; op: ComparisonOp; left: Operand; right: Operand; position: number }
  | { kind: "stringFunction"; name: StringFunction; target: Operand; value: Operand; position: number }
  | { kind: "queryFunction"; name: string; args: Record<string, Literal | Literal[]>; position: number };

type TokenType =
  "(" | ")" | "," | "=" | "[" | "]" | "/" | "string" | "jsonString" | "number" | "guid" | "datetime" | "word" | "alias";

export interface Token {
  type: TokenType;
  text: string;
  value?: string | number;
  position: number;
}

export const syntaxError = (message: string) => new ODataError(400, ErrorCodes.badRequest, message);

const PATTERNS: Array<[TokenType, RegExp]> = [
  ["guid", /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-])/],
  ["datetime", /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})?)?(?![\w-])/],
  ["number", /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])/],
  ["alias", /^@[A-Za-z_]\w*/],
  ["word", /^\$?[A-Za-z_][\w.]*/],
];

/** Splits an expression into tokens; `source` names the option in messages. */
export function tokenize(text: string, source = "$filter"): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    if ("(),=[]/".includes(ch)) {
      tokens.push({ type: ch as TokenType, text: ch, position: i });
      i++;
      continue;
    }
    if (ch === "'") {
      // OData string literal: a quote inside is doubled.
      let value = "";
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw syntaxError(`There is an unterminated literal at position ${i} in '${text}'.`);
        if (text[j] === "'") {
          if (text[j + 1] === "'") {
            value += "'";
            j += 2;
            continue;
          }
          break;
        }
        value += text[j++];
      }
      if (hasNulCharacter(value)) throw syntaxError(`The literal at position ${i} in ${source} holds a NUL character.`);
      tokens.push({ type: "string", text: text.slice(i, j + 1), value, position: i });
      i = j + 1;
      continue;
    }
    if (ch === '"') {
      // JSON string, inside the PropertyValues arrays of query functions.
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (j >= text.length) throw syntaxError(`There is an unterminated literal at position ${i} in '${text}'.`);
      const raw = text.slice(i, j + 1);
      let value: string;
      try {
        value = JSON.parse(raw) as string;
      } catch {
        throw syntaxError(`Invalid JSON string ${raw} at position ${i} in ${source}.`);
      }
      if (hasNulCharacter(value)) throw syntaxError(`The literal at position ${i} in ${source} holds a NUL character.`);
      tokens.push({ type: "jsonString", text: raw, value, position: i });
      i = j + 1;
      continue;
    }
    const rest = text.slice(i);
    const matched = PATTERNS.find(([, pattern]) => pattern.test(rest));
    if (!matched) throw syntaxError(`Syntax error at position ${i} in ${source} '${text}': unexpected '${ch}'.`);
    const [type, pattern] = matched;
    const tokenText = pattern.exec(rest)![0];
    tokens.push({ type, text: tokenText, value: type === "number" ? Number(tokenText) : tokenText, position: i });
    i += tokenText.length;
  }
  return tokens;
}

const COMPARISONS = new Set(["eq", "ne", "gt", "ge", "lt", "le"]);
const STRING_FUNCTIONS = new Set(["contains", "startswith", "endswith"]);
const QUERY_FUNCTION_PREFIX = `${DATAVERSE_NAMESPACE}.`;

/** Aliases (`@p1`) take their text from the query string; the text is parsed as an operand. */
export type Aliases = Record<string, string | undefined>;

export class TokenStream {
  private index = 0;
  constructor(
    private readonly tokens: Token[],
    readonly text: string,
    readonly source: string,
  ) {}

  peek(offset = 0): Token | undefined {
    return this.tokens[this.index + offset];
  }
  next(): Token | undefined {
    return this.tokens[this.index++];
  }
  atEnd(): boolean {
    return this.index >= this.tokens.length;
  }
  position(): number {
    return this.peek()?.position ?? this.text.length;
  }
  isWord(word: string, offset = 0): boolean {
    const token = this.peek(offset);
    return token?.type === "word" && token.text === word;
  }
  expect(type: TokenType, what = `'${type}'`): Token {
    const token = this.next();
    if (!token || token.type !== type) {
      const found = token ? `'${token.text}'` : "the end of the expression";
      throw syntaxError(
        `Syntax error at position ${token?.position ?? this.text.length} in ${this.source} '${this.text}': expected ${what} but found ${found}.`,
      );
    }
    return token;
  }
  fail(expected: string): never {
    const token = this.peek();
    throw syntaxError(
      `Syntax error at position ${this.position()} in ${this.source} '${this.text}': expected ${expected} but found ${token ? `'${token.text}'` : "the end of the expression"}.`,
    );
  }
}

const MAX_DEPTH = 100;
/** Dataverse's limit; it also bounds the depth of the and/or tree. */
export const MAX_CONDITIONS = 500;

export class FilterParser {
  private conditions = 0;

  constructor(
    private readonly stream: TokenStream,
    private readonly aliases: Aliases = {},
    private depth = 0,
  ) {}

  static parse(text: string, aliases: Aliases = {}, source = "$filter"): FilterExpr {
    const stream = new TokenStream(tokenize(text, source), text, source);
    const parser = new FilterParser(stream, aliases);
    const expr = parser.expression();
    if (!stream.atEnd()) stream.fail("'and', 'or' or the end of the expression");
    return expr;
  }

  expression(): FilterExpr {
    // Deeply nested input must not exhaust the stack.
    if (++this.depth > MAX_DEPTH) throw syntaxError(`${this.stream.source} is nested too deeply.`);
    let left = this.conjunction();
    while (this.stream.isWord("or")) {
      this.stream.next();
      left = { kind: "or", left, right: this.conjunction() };
    }
    this.depth--;
    return left;
  }

  private conjunction(): FilterExpr {
    let left = this.unary();
    while (this.stream.isWord("and")) {
      this.stream.next();
      left = { kind: "and", left, right: this.unary() };
    }
    return left;
  }

  private unary(): FilterExpr {
    if (this.stream.isWord("not")) {
      const position = this.stream.next()!.position;
      if (++this.depth > MAX_DEPTH) throw syntaxError(`${this.stream.source} is nested too deeply.`);
      const operand = this.unary();
      this.depth--;
      if (operand.kind === "queryFunction") {
        throw syntaxError("Not operator along with the Custom Named Condition operators is not allowed.");
      }
      return { kind: "not", operand, position };
    }
    return this.primary();
  }

  private primary(): FilterExpr {
    const token = this.stream.peek();
    if (!token) this.stream.fail("an expression");
    if (token.type === "(") {
      this.stream.next();
      const inner = this.expression();
      this.stream.expect(")");
      return inner;
    }
    if (++this.conditions > MAX_CONDITIONS) {
      throw new ODataError(400, "0x8004430C", "Number of conditions in query exceeded maximum limit.");
    }
    if (token.type === "word" && this.stream.peek(1)?.type === "(") {
      if (STRING_FUNCTIONS.has(token.text)) return this.stringFunction();
      if (token.text.startsWith(QUERY_FUNCTION_PREFIX)) return this.queryFunction();
      throw syntaxError(
        `Unknown function '${token.text}' at position ${token.position} in ${this.stream.source}; ` +
          `use contains, startswith, endswith or a Microsoft.Dynamics.CRM query function.`,
      );
    }
    const left = this.operand();
    const op = this.stream.peek();
    if (!op || op.type !== "word" || !COMPARISONS.has(op.text)) {
      this.stream.fail("a comparison operator (eq, ne, gt, ge, lt, le)");
    }
    this.stream.next();
    const right = this.operand();
    return { kind: "compare", op: op.text as ComparisonOp, left, right, position: op.position };
  }

  private stringFunction(): FilterExpr {
    const name = this.stream.next()!;
    this.stream.expect("(");
    const target = this.operand();
    this.stream.expect(",");
    const value = this.operand();
    this.stream.expect(")");
    return { kind: "stringFunction", name: name.text as StringFunction, target, value, position: name.position };
  }

  private queryFunction(): FilterExpr {
    const name = this.stream.next()!;
    this.stream.expect("(");
    const args: Record<string, Literal | Literal[]> = {};
    while (this.stream.peek()?.type !== ")") {
      const argName = this.stream.expect("word", "a parameter name");
      this.stream.expect("=");
      args[argName.text] = this.stream.peek()?.type === "[" ? this.jsonArray() : this.literal();
      if (this.stream.peek()?.type === ",") this.stream.next();
      else break;
    }
    this.stream.expect(")");
    return { kind: "queryFunction", name: name.text.slice(QUERY_FUNCTION_PREFIX.length), args, position: name.position };
  }

  private jsonArray(): Literal[] {
    this.stream.expect("[");
    const values: Literal[] = [];
    while (this.stream.peek()?.type !== "]") {
      const token = this.stream.next();
      if (!token || (token.type !== "jsonString" && token.type !== "number")) {
        throw syntaxError(
          `Invalid JSON at position ${token?.position ?? this.stream.text.length} in ${this.stream.source}: ` +
            `PropertyValues takes an array of strings such as ["a","b"].`,
        );
      }
      values.push({ kind: "literal", type: "string", value: String(token.value), position: token.position });
      if (this.stream.peek()?.type === ",") this.stream.next();
      else if (this.stream.peek()?.type !== "]") this.stream.fail("',' or ']' in the JSON array");
    }
    this.stream.expect("]");
    return values;
  }

  private literal(): Literal {
    const operand = this.operand();
    if (operand.kind !== "literal") {
      throw syntaxError(`Expected a value at position ${operand.position} in ${this.stream.source}, found '${operand.name}'.`);
    }
    return operand;
  }

  operand(): Operand {
    const token = this.stream.next();
    if (!token) return this.stream.fail("a property or a value");
    switch (token.type) {
      case "string":
        return { kind: "literal", type: "string", value: token.value as string, position: token.position };
      case "number":
        return { kind: "literal", type: "number", value: token.value as number, position: token.position };
      case "guid":
        return { kind: "literal", type: "guid", value: token.text.toLowerCase(), position: token.position };
      case "datetime":
        return { kind: "literal", type: "datetime", value: token.text, position: token.position };
      case "alias": {
        const text = this.aliases[token.text];
        // An alias without a value is null (reference §3).
        if (text === undefined) return { kind: "literal", type: "null", value: null, position: token.position };
        const stream = new TokenStream(tokenize(text, token.text), text, token.text);
        const operand = new FilterParser(stream).operand();
        if (!stream.atEnd()) stream.fail("a single value");
        return operand;
      }
      case "word":
        if (token.text === "null") return { kind: "literal", type: "null", value: null, position: token.position };
        if (token.text === "true" || token.text === "false") {
          return { kind: "literal", type: "boolean", value: token.text === "true", position: token.position };
        }
        if (token.text.includes("/") || token.text.includes(".")) {
          throw syntaxError(
            `'${token.text}' at position ${token.position} is not supported in ${this.stream.source}: use a property of the table.`,
          );
        }
        return { kind: "property", name: token.text, position: token.position };
      default:
        throw syntaxError(
          `Syntax error at position ${token.position} in ${this.stream.source} '${this.stream.text}': unexpected '${token.text}'.`,
        );
    }
  }
}

export const parseFilter = (text: string, aliases: Aliases = {}) => FilterParser.parse(text, aliases);
