"""HDF5 activation stores: writing and reading them in chunks, and which rows each stage uses.
"""
