-- Provider engines: the upstream provider, model and task id of a job, recorded by the
-- projector as soon as a worker reports them (fenced by the lease), and handed back by the
-- claim so a later attempt resumes the upstream task instead of submitting it again. Also
-- what the job JSON shows as `engine` (with the provider's usage report once it is known).
ALTER TABLE jobs ADD COLUMN upstream JSONB;
