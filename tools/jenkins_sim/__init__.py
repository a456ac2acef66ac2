"""Jenkins REST simulator for roundhouse tests (Python standard library only).

Independent of the C++ adapter on purpose: it shares no code with it.
"""
