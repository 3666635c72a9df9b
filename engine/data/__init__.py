"""Data: what a config's data holds (`sources`, torch-free) and the data sets as tensors on
the training device (`dataset`, and one loader per problem: house, mnist, table, images)."""
