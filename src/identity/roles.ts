/**
 * The security roles, each a set of `prv<Verb><table>` privileges (issue 11): what a
 * principal may do is the union of its roles' privileges, as Dataverse's roles add up.
 */
import { ALL_PRIVILEGES, type PrivilegeVerb, privilegeName } from "../model/privileges.js";
import { type TableDef, WEB_API_TABLES, tableByLogicalName } from "../model/tables.js";

export const ROLE_NAMES = ["Administrator", "Analyst", "ChannelProvider"] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

const grant = (verbs: readonly PrivilegeVerb[], tables: readonly TableDef[]) =>
  tables.flatMap((table) => verbs.map((verb) => privilegeName({ verb, table })));

/** The tables of a conversation's tree, which a channel provider logs into. */
const CONVERSATION_TREE = [
  "msdyn_conversationdata",
  "msdyn_sessiondata",
  "msdyn_sessionparticipantdata",
  "msdyn_kpieventdata",
].map(tableByLogicalName);

export const ROLE_PRIVILEGES: Readonly<Record<RoleName, ReadonlySet<string>>> = {
  /** Everything, including providers (enabling analytics), definitions, principals and erasure. */
  Administrator: new Set(ALL_PRIVILEGES),
  /** Supervisors and managers: read everything in the organisation; no writes. */
  Analyst: new Set(grant(["Read"], WEB_API_TABLES)),
  /**
   * A channel provider's server, bound to one msdyn_ciprovider: its own conversations,
   * sessions, participants and events (the row scope is enforced in src/channel-analytics/),
   * and the KPI event definitions to read; no delete, nothing else.
   */
  ChannelProvider: new Set([
    ...grant(["Create", "Read", "Write", "Append", "AppendTo"], CONVERSATION_TREE),
    ...grant(["Read"], [tableByLogicalName("msdyn_kpieventdefinition")]),
  ]),
};

export const isRoleName = (name: string): name is RoleName => (ROLE_NAMES as readonly string[]).includes(name);
