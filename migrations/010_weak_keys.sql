-- A phone or email is a lookup key, not an identity: an office's number or address is given for
-- several people whose names disagree, and each of their rows shows it. The unique indexes among
-- people without a DIN or PAN go; the plain indexes (people_phone, people_email) stay.
DROP INDEX people_phone_without_identity;
DROP INDEX people_email_without_identity;
