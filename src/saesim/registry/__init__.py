"""The registries every reported column comes from.
"""
