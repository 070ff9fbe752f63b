-- CreateIndex
CREATE INDEX "ix_msdyn_kpieventdata_conversationid_eventtimestamp" ON "msdyn_kpieventdata"("msdyn_conversationid", "msdyn_eventtimestamp");

