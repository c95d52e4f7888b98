-- shape: text equality pushed to PostgreSQL
SELECT ticket_id FROM crm.tickets t JOIN sales.customers c ON c.customer_id = t.contact_id WHERE t.subject = 'refund'
-- plan
fragment __fragment_1 @ crm_db: filter "t"."subject" = 'refund'
  SELECT "t"."contact_id" AS "contact_id", "t"."ticket_id" AS "ticket_id" FROM "public"."tickets" AS "t" WHERE "t"."subject" = 'refund'
fragment __fragment_2 @ sales_db: scan
  SELECT "c"."customer_id" AS "customer_id" FROM "customers" AS "c"
merge @ duckdb: merge of the fragments
  SELECT "t"."ticket_id" AS "ticket_id" FROM "__fragment_1" AS "t" CROSS JOIN "__fragment_2" AS "c" WHERE "c"."customer_id" = "t"."contact_id"
