"""Group `webhooks`: the `webhook_deliveries` sensor, which sends the outbox's due events in its own ticks, and
the `webhook_outbox` asset it reports the outbox's figures on."""
