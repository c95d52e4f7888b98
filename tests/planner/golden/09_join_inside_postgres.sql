-- shape: join inside PostgreSQL pushed whole
SELECT c.contact_id, COUNT(t.ticket_id) AS tickets FROM crm.contacts c JOIN crm.tickets t ON t.contact_id = c.contact_id WHERE t.priority <= 2 GROUP BY c.contact_id ORDER BY c.contact_id
-- plan
fragment __fragment_1 @ crm_db: whole query
  SELECT "c"."contact_id" AS "contact_id", COUNT("t"."ticket_id") AS "tickets" FROM "public"."contacts" AS "c" JOIN "public"."tickets" AS "t" ON "c"."contact_id" = "t"."contact_id" AND "t"."priority" <= 2 GROUP BY "c"."contact_id" ORDER BY "contact_id"
