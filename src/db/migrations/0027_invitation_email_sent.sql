-- When the mail server accepted an invitation's email (docs/panel.md, "Invitations"): the admin's
-- list says "email sent" per invitation only then, and "no email sent, give the link yourself"
-- otherwise (mail not set up, server down, recipient refused). NULL until a send succeeds; set
-- after the invitation's own transaction commits, since the email goes out only once the
-- invitation exists.
ALTER TABLE invitations ADD COLUMN email_sent_at timestamptz;
-- No grant or policy changes: the tenant policy of 0001 covers the new column.
