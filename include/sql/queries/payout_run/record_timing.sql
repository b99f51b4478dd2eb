UPDATE payouts.runs SET updated_at = now(), timings_s = timings_s || jsonb_build_object(
    %(name)s::text, jsonb_build_object(
        'start', LEAST(COALESCE((timings_s -> %(name)s ->> 'start')::float8, %(start)s), %(start)s),
        'end', GREATEST(COALESCE((timings_s -> %(name)s ->> 'end')::float8, %(end)s), %(end)s)))
WHERE run_id = %(run_id)s
