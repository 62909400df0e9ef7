WHO = 'rel_helper of sibling_b'
