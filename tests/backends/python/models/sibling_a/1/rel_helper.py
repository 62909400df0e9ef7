WHO = 'rel_helper of sibling_a'
