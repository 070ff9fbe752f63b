-- KPI events that no metric, detail record or timeline reads (src/analytics/derive.ts
-- IGNORED_EVENTS) no longer mark their conversation for re-derivation: a focus switch is
-- the most frequent event a CIF client logs, and re-deriving a conversation for it changed nothing.
CREATE FUNCTION "cif_analytics_mark_new_events"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "cif_analytics_dirty" ("conversationid")
    SELECT DISTINCT "msdyn_conversationid" FROM new_rows
     WHERE coalesce("msdyn_kpieventname", '') NOT IN ('SessionFocusIn', 'SessionFocusOut');
  RETURN NULL;
END
$$;

CREATE FUNCTION "cif_analytics_mark_old_events"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "cif_analytics_dirty" ("conversationid")
    SELECT DISTINCT "msdyn_conversationid" FROM old_rows
     WHERE coalesce("msdyn_kpieventname", '') NOT IN ('SessionFocusIn', 'SessionFocusOut');
  RETURN NULL;
END
$$;

CREATE FUNCTION "cif_analytics_mark_changed_events"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO "cif_analytics_dirty" ("conversationid")
    SELECT "msdyn_conversationid" FROM new_rows
     WHERE coalesce("msdyn_kpieventname", '') NOT IN ('SessionFocusIn', 'SessionFocusOut')
    UNION
    SELECT "msdyn_conversationid" FROM old_rows
     WHERE coalesce("msdyn_kpieventname", '') NOT IN ('SessionFocusIn', 'SessionFocusOut');
  RETURN NULL;
END
$$;

-- On a Citus cluster these triggers were dropped (20261204144800_citus_distribution) and stay so.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    DROP TRIGGER IF EXISTS "cif_analytics_inserted" ON "msdyn_kpieventdata";
    DROP TRIGGER IF EXISTS "cif_analytics_updated" ON "msdyn_kpieventdata";
    DROP TRIGGER IF EXISTS "cif_analytics_deleted" ON "msdyn_kpieventdata";
    CREATE TRIGGER "cif_analytics_inserted" AFTER INSERT ON "msdyn_kpieventdata" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_new_events"();
    CREATE TRIGGER "cif_analytics_updated" AFTER UPDATE ON "msdyn_kpieventdata" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_changed_events"();
    CREATE TRIGGER "cif_analytics_deleted" AFTER DELETE ON "msdyn_kpieventdata" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "cif_analytics_mark_old_events"();
  END IF;
END
$$;

-- Conversations are derived again without their focus events.
INSERT INTO "cif_analytics_dirty" ("conversationid") SELECT "msdyn_conversationid" FROM "msdyn_conversationdata";
