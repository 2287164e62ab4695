"""Where the hotline may call: one destination policy for every call it places to an outside
number (callbacks, follow-ups, click-to-call, transfers out), and the record of its refusals."""
