-- shape: IN subquery over another source
SELECT order_id FROM sales.orders WHERE employee_id IN (SELECT id FROM hr.employees WHERE region = 'EU')
-- plan
fragment __fragment_1 @ hr_db: whole query
  SELECT "employees"."id" AS "id" FROM "employees" AS "employees" WHERE "employees"."region" = 'EU' GROUP BY "employees"."id"
fragment __fragment_2 @ sales_db: scan
  SELECT "orders"."employee_id" AS "employee_id", "orders"."order_id" AS "order_id" FROM "orders" AS "orders"
merge @ duckdb: merge of the fragments
  SELECT "orders"."order_id" AS "order_id" FROM "__fragment_2" AS "orders" LEFT JOIN "__fragment_1" AS "_u_0" ON "orders"."employee_id" = _u_0.id WHERE NOT _u_0.id IS NULL
