"""Porting OpenAI Glow weights into GlowModel."""
