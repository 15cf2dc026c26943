"""Use cases of webhooks: subscriptions (with their secrets) and the delivery of the outbox."""
