-- The newest TOTP time step each user spent (Unix time / 30 s): a code
-- whose step is not newer is a replay and is refused (docs/security.md,
-- Passwords, second factors and lockout).
ALTER TABLE users ADD COLUMN mfa_last_step INTEGER NOT NULL DEFAULT 0;
