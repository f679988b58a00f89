-- Each agent's last confirmed beauty settings. No row: the default preset (natural).
CREATE TABLE beauty_settings (
    user_id     TEXT PRIMARY KEY REFERENCES users (id),
    preset      TEXT NOT NULL,
    smoothing   DOUBLE PRECISION NOT NULL,
    whitening   DOUBLE PRECISION NOT NULL,
    ruddiness   DOUBLE PRECISION NOT NULL,
    sharpness   DOUBLE PRECISION NOT NULL,
    updated_at  BIGINT NOT NULL
);
