"""A Twilio emulator beside the Telnyx one: signed form webhooks, TwiML, REST, Media Streams."""
