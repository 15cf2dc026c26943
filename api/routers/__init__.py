"""HTTP routers: each turns requests into use-case commands and results into DTOs."""
