-- shape: LEFT JOIN: ON predicate on the joined side goes into its scan
SELECT o.order_id, e.name FROM sales.orders o LEFT JOIN hr.employees e ON e.id = o.employee_id AND e.region = 'US'
-- plan
fragment __fragment_1 @ hr_db: whole query
  SELECT "e"."id" AS "id", "e"."name" AS "name" FROM "employees" AS "e" WHERE "e"."region" = 'US'
fragment __fragment_2 @ sales_db: scan
  SELECT "o"."employee_id" AS "employee_id", "o"."order_id" AS "order_id" FROM "orders" AS "o"
merge @ duckdb: merge of the fragments
  SELECT "o"."order_id" AS "order_id", "e"."name" AS "name" FROM "__fragment_2" AS "o" LEFT JOIN "__fragment_1" AS "e" ON "e"."id" = "o"."employee_id" AND TRUE
