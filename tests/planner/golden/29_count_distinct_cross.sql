-- shape: COUNT(DISTINCT) across sources
SELECT e.region, COUNT(DISTINCT o.customer_id) AS customers FROM sales.orders o JOIN hr.employees e ON e.id = o.employee_id GROUP BY e.region
-- plan
fragment __fragment_1 @ sales_db: scan
  SELECT "o"."customer_id" AS "customer_id", "o"."employee_id" AS "employee_id" FROM "orders" AS "o"
fragment __fragment_2 @ hr_db: scan
  SELECT "e"."id" AS "id", "e"."region" AS "region" FROM "employees" AS "e"
merge @ duckdb: merge of the fragments
  SELECT "e"."region" AS "region", COUNT(DISTINCT "o"."customer_id") AS "customers" FROM "__fragment_1" AS "o" CROSS JOIN "__fragment_2" AS "e" WHERE "e"."id" = "o"."employee_id" GROUP BY "e"."region"
