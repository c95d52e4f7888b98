-- shape: CTE referenced twice
WITH eu AS (SELECT id, manager_id FROM hr.employees WHERE region = 'EU') SELECT a.id, b.id AS manager FROM eu a JOIN eu b ON a.manager_id = b.id
-- plan
fragment __fragment_1 @ hr_db: whole query
  SELECT "employees"."id" AS "id", "employees"."manager_id" AS "manager_id" FROM "employees" AS "employees" WHERE "employees"."region" = 'EU'
merge @ duckdb: the source cannot run this (sub)query whole; it was split
  WITH "eu$cte1" AS MATERIALIZED (SELECT * FROM __fragment_1) SELECT "a"."id" AS "id", "b"."id" AS "manager" FROM "eu$cte1" AS "a" JOIN "eu$cte1" AS "b" ON "a"."manager_id" = "b"."id"
