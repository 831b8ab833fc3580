-- vrcloud schema, part 5: canceling Tasks (POST /api/task/{id}/action/cancel).
--
-- Accepting an action on a replication moves its state to the action's
-- in-progress value (vr_engine_begin). A canceled job did not happen, so
-- its cancellation puts back what the acceptance changed: the job keeps the
-- replication's state as it was just before (docs/pipeline.md, section 5).
-- NULL on jobs of lanes that change no replication state.
ALTER TABLE jobs
    ADD COLUMN prior_recovery_state      text
        CHECK (prior_recovery_state IN ('unknown', 'notStarted', 'inProgress', 'error',
                                        'recovered')),
    ADD COLUMN prior_test_recovery_state text
        CHECK (prior_test_recovery_state IN ('unknown', 'none', 'testInProgress', 'complete',
                                             'cleanupInProgress', 'testError',
                                             'cleanupError')),
    ADD COLUMN prior_replication_state   text
        CHECK (prior_replication_state IN ('initialSync', 'fullSync', 'ok', 'error',
                                           'notActive')),
    ADD COLUMN prior_paused              boolean,
    ADD CONSTRAINT jobs_prior_state_whole CHECK (
        (prior_recovery_state IS NULL) = (prior_test_recovery_state IS NULL)
        AND (prior_recovery_state IS NULL) = (prior_replication_state IS NULL)
        AND (prior_recovery_state IS NULL) = (prior_paused IS NULL));
