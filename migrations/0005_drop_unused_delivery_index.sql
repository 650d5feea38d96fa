-- Standby schema, version 5: no query reads deliveries by their received_at alone (an alert's
-- deliveries are found through deliveries_alert), and every delivery paid for this index.

DROP INDEX IF EXISTS deliveries_received;
