-- shape: inner-join ON filter pushed in a SELECT that also has an outer join
SELECT o.order_id, c.name, e.name AS seller FROM sales.orders o JOIN crm.contacts c ON c.customer_id = o.customer_id AND c.created < DATE '2023-06-01' LEFT JOIN hr.employees e ON e.id = o.employee_id AND e.region = 'EU'
-- plan
fragment __fragment_1 @ hr_db: whole query
  SELECT "e"."id" AS "id", "e"."name" AS "name" FROM "employees" AS "e" WHERE "e"."region" = 'EU'
fragment __fragment_2 @ sales_db: scan
  SELECT "o"."customer_id" AS "customer_id", "o"."employee_id" AS "employee_id", "o"."order_id" AS "order_id" FROM "orders" AS "o"
fragment __fragment_3 @ crm_db: filter "c"."created" < CAST('2023-06-01' AS DATE)
  SELECT "c"."customer_id" AS "customer_id", "c"."name" COLLATE "C" AS "name" FROM "public"."contacts" AS "c" WHERE "c"."created" < CAST('2023-06-01' AS DATE)
merge @ duckdb: merge of the fragments
  SELECT "o"."order_id" AS "order_id", "c"."name" AS "name", "e"."name" AS "seller" FROM "__fragment_2" AS "o" JOIN "__fragment_3" AS "c" ON "c"."customer_id" = "o"."customer_id" LEFT JOIN "__fragment_1" AS "e" ON "e"."id" = "o"."employee_id" AND TRUE
