"""The LangGraph simulation graph, its state, nodes and routing, and the batch runner."""
