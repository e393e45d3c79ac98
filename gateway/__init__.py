"""The server side's Temporal access: start, signal, update, query and list journeys
(`journeys`), visibility queries (`visibility`), namespace set-up (`namespace`)."""
