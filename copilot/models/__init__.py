"""Model backends behind LangChain interfaces: chat models and embedders, one module per provider."""
