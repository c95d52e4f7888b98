-- shape: a CTE read twice in a query PostgreSQL runs whole goes down as a materialized CTE
WITH t AS (SELECT tk.contact_id AS contact_id, count(*) AS n FROM crm.tickets tk GROUP BY tk.contact_id) SELECT k.contact_id, k.name, t.n FROM crm.contacts k JOIN t ON t.contact_id = k.contact_id WHERE t.n = (SELECT max(t2.n) FROM t t2) ORDER BY k.contact_id
-- plan
fragment __fragment_1 @ crm_db: whole query
  WITH "t$cte1" AS MATERIALIZED (SELECT "tk"."contact_id" AS "contact_id", COUNT(*) AS "n" FROM "public"."tickets" AS "tk" GROUP BY "tk"."contact_id") SELECT "k"."contact_id" AS "contact_id", "k"."name" COLLATE "C" AS "name", "t"."n" AS "n" FROM "public"."contacts" AS "k" JOIN "t$cte1" AS "t" ON "k"."contact_id" = "t"."contact_id" JOIN (SELECT MAX("t2"."n") AS "_col_0" FROM "t$cte1" AS "t2") AS "_u_0" ON "t"."n" = "_u_0"."_col_0" ORDER BY "k"."contact_id"
