-- The signer keeps its keys in its own database.
CREATE DATABASE signer;
