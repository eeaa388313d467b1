"""Tables, figures and feature pages made from the stages' artifacts.
"""
