-- DropIndex
DROP INDEX "ix_msdyn_kpieventdata_conversationid_eventtimestamp";


-- Hand-written (Prisma's schema cannot say NULLS LAST): handWrittenIndexSql() in src/model/prisma-schema.ts.
-- A conversation's events newest first sort msdyn_eventtimestamp DESC NULLS LAST, msdyn_kpieventdataid: this index's order.
CREATE INDEX "ix_msdyn_kpieventdata_conversationid_eventtimestamp" ON "msdyn_kpieventdata"("msdyn_conversationid", "msdyn_eventtimestamp" DESC NULLS LAST, "msdyn_kpieventdataid");
