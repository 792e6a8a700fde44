-- « Je pense que c'est une erreur » on a refused generation opens the contact form with the
-- subject `erreur` (`web::contact::SUBJECTS`), which the table refused: sending it was a 500 and
-- the message was lost. The table now takes every subject the form offers.
ALTER TABLE contact_messages DROP CONSTRAINT contact_messages_subject_check;
ALTER TABLE contact_messages ADD CONSTRAINT contact_messages_subject_check
    CHECK (subject IN ('question', 'facturation', 'technique', 'evenement', 'erreur'));
