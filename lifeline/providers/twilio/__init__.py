"""Twilio: signed form webhooks answered with TwiML, REST call updates, Media Streams."""
