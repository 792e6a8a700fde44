-- The back office's organisations part: contact messages get a status (new until a staff member
-- marks one answered).

-- Answered: when, and by whom (`staff:<email>`); the audit log keeps the why.
ALTER TABLE contact_messages
    ADD COLUMN answered_at timestamptz,
    ADD COLUMN answered_by text,
    ADD CONSTRAINT contact_messages_answered_check CHECK ((answered_at IS NULL) = (answered_by IS NULL));

-- The staff's list of messages still to answer, newest first.
CREATE INDEX contact_messages_new_idx ON contact_messages (created_at DESC) WHERE answered_at IS NULL;

