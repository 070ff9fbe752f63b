/**
 * The kinds of log destination an administrator can add (System > Diagnostics): their
 * settings checked when added, and a destination made from them for forwarding.
 */
import type { LogDestination } from "../azure-monitor.js";
import { AzureStorageDestination, parseAzureStorageSettings } from "./azure-storage.js";
import { JetStreamDestination, parseJetStreamSettings } from "./jetstream.js";

export const DESTINATION_TYPES = ["AzureStorage", "JetStream"] as const;
export type DestinationType = (typeof DESTINATION_TYPES)[number];

export interface OpenDestination extends LogDestination {
  /** What it points at, without any secret (for listings). */
  describe(): Record<string, unknown>;
}

/**
 * Checks settings as an administrator gave them (throws an Error naming each bad field,
 * never echoing a secret). An Azure Storage destination's `resourceId` is the
 * organisation's, filled in here.
 */
export function validateSettings(type: DestinationType, settings: unknown, resourceId: string): Record<string, unknown> {
  if (type === "AzureStorage") {
    const given = typeof settings === "object" && settings !== null ? settings : {};
    return parseAzureStorageSettings({ ...given, resourceId });
  }
  return parseJetStreamSettings(settings);
}

export function openDestination(type: DestinationType, settings: Record<string, unknown>): OpenDestination {
  return type === "AzureStorage"
    ? new AzureStorageDestination(settings as ConstructorParameters<typeof AzureStorageDestination>[0])
    : new JetStreamDestination(settings as ConstructorParameters<typeof JetStreamDestination>[0]);
}
