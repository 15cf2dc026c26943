"""Pure domain: entities, state rules, exceptions and gateway Protocols. No framework imports."""
