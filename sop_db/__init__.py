"""SOP engine memory: the stage taxonomy, the mining pipeline and the Chroma behaviour-chain store."""
