WHO = 'helper of sibling_a'
