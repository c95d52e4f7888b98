-- shape: LIKE on SQLite is inexact: pushed and re-checked
SELECT e.id, o.order_id FROM hr.employees e JOIN sales.orders o ON o.employee_id = e.id WHERE e.name LIKE 'Employee 1%'
-- plan
fragment __fragment_1 @ hr_db: filter "e"."name" LIKE 'Employee 1%' (inexact, re-checked locally)
  SELECT "e"."id" AS "id", "e"."name" AS "name" FROM "employees" AS "e" WHERE "e"."name" LIKE 'Employee 1%'
fragment __fragment_2 @ sales_db: scan
  SELECT "o"."employee_id" AS "employee_id", "o"."order_id" AS "order_id" FROM "orders" AS "o"
merge @ duckdb: merge of the fragments
  SELECT "e"."id" AS "id", "o"."order_id" AS "order_id" FROM "__fragment_1" AS "e" CROSS JOIN "__fragment_2" AS "o" WHERE "e"."name" LIKE 'Employee 1%' AND "e"."id" = "o"."employee_id"
